/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for udev. An attach is answered only once udev has handled every
 * uevent the kernel sent about the device and its partitions: its links
 * are made, its file systems probed, nbdlink's properties imported
 * (udev-properties.h), so a caller can mount at once and udisks2 can tell
 * what the device is. Without udevd running there is nothing to wait for. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/time-util.h"

/* How long an attach waits for udev at most. udevd handles a new nbd
 * device in milliseconds; a blkid probe on a slow server, or a queue
 * full of events at boot, can take longer, and then the attach is
 * answered anyway (the device works; udev catches up). */
#define UDEV_SETTLE_TIMEOUT_USEC (15 * USEC_PER_SEC)

/* The kernel's and udevd's multicast groups on NETLINK_KOBJECT_UEVENT. */
#define UEVENT_GROUP_KERNEL 1u
#define UEVENT_GROUP_UDEV   2u

typedef struct UdevSettle UdevSettle;

/* Starts listening, before the device starts, so that nothing the kernel
 * says about nbd<index> is missed. *ret is NULL (and 0 returned) where
 * udevd does not run. */
int udev_settle_begin(int index, UdevSettle **ret);
/* After the device started and its partitions were scanned: waits until
 * udevd has broadcast the outcome of each uevent the kernel sent for
 * nbd<index> or its partitions since udev_settle_begin(). 0 at once for a
 * NULL s; -ETIMEDOUT, -ENOBUFS when kernel events were lost to an overrun
 * and the wait cannot know what to wait for, -ECANCELED once *stop (when
 * given; read atomically) is set: the device ended meanwhile. */
int udev_settle_wait(UdevSettle *s, usec_t timeout_usec, const int *stop);
UdevSettle *udev_settle_free(UdevSettle *s);

/* A socket joined to one of the groups above, nonblocking, or -errno. */
int uevent_socket_open(unsigned group);

/* One uevent as it came off a socket: the kernel's
 * "ACTION@DEVPATH\0KEY=VALUE\0..." or udevd's "libudev\0" header followed
 * by KEY=VALUE\0 pairs. Pointers into the buffer. */
typedef struct Uevent {
        const char *devpath;
        uint64_t seqnum;
} Uevent;

/* -EBADMSG for anything malformed, or without DEVPATH or SEQNUM. */
int uevent_parse(const void *buf, size_t n, bool from_udev, Uevent *ret);
/* Whether devpath is nbd<index>'s, or one of its partitions'. */
bool uevent_devpath_is_device(const char *devpath, int index);
