/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the kernel says of its nbd devices in sysfs, whoever set them up:
 * nbdlink's status and list show devices that nbd-client or another tool
 * attached, which the daemon knows nothing of. Reads only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct NbdSysfsDevice {
        int index;              /* N of nbdN */
        bool exists;            /* ROOT/block/nbdN is there */
        bool connected;         /* it has a pid file or a size: a running connection */
        pid_t pid;              /* of the task that set it up; 0 when unknown */
        uint64_t size;          /* bytes */
        bool read_only;
} NbdSysfsDevice;

/* Where sysfs is: "/sys". A test hook, NBDLINK_TEST_SYSFS_ROOT, names
 * another directory laid out the same way, so that the test suites can
 * show devices of other tools on a machine without the nbd module. It is
 * read here and nowhere else, and through secure_getenv(), so a
 * privileged nbdlink never follows it. */
const char *nbd_sysfs_root(void);

/* Reads ROOT/block/nbdN. A device that does not exist is no error: 0 and
 * exists false. Negative errno when its files cannot be read. */
int nbd_sysfs_read(const char *root, int index, NbdSysfsDevice *ret);

/* The connected nbd devices under ROOT/block, by N. No ROOT/block, or no
 * nbd device in it, is an empty list. Caller frees *ret. */
int nbd_sysfs_list_connected(const char *root, NbdSysfsDevice **ret, size_t *ret_n);
