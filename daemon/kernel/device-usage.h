/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who uses an nbd device: a mount, a holder stacked on it (device mapper,
 * md), or an exclusive opener. Detaching such a device would pull a disk
 * from under a file system. */
#pragma once

#include "error-text.h"

/* Under `root` ("" for the real system; tests pass a directory with
 * proc/self/mountinfo, sys/block/ and dev/ of their making). Returns 0 when
 * nothing uses /dev/nbd<index> or any of its partitions; -EBUSY when
 * something does, with the first reason found in `error` ("/dev/nbd0p1 is
 * mounted on /media/disk", "/dev/nbd0 is held by dm-0", "/dev/nbd0 is open
 * exclusively by another program"); another negative errno when it cannot
 * tell (no such device in sysfs). */
int nbd_device_usage(const char *root, int index, Error *error);
