/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one way a /dev/nbdN node is opened for ioctls, and what sysfs says
 * about the nbd devices. */
#pragma once

#include "error-text.h"

#include <stdbool.h>
#include <stddef.h>

#define NBD_MAJOR_NUMBER 43

/* Opens path for ioctls: O_RDWR|O_NOFOLLOW|O_CLOEXEC, then fstat must show a
 * block device with the nbd major. -ENODEV (missing node, missing module,
 * wrong kind of file) with a message; other errors as open(2) gave them. */
int nbd_device_open_path(const char *path, int *ret_fd, Error *error);
/* The same for /dev/nbd<index>, telling a missing nbd module apart. */
int nbd_device_open(int index, int *ret_fd, Error *error);

/* Whether the kernel's nbd driver is there at all (sysfs). */
bool nbd_module_loaded(void);
/* Whether /sys/block/nbd<index> exists, has no running connection, and
 * nobody holds it exclusively (a file system not yet gone from it). */
int nbd_device_is_free(int index);
