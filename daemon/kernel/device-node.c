/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one way a /dev/nbdN node is opened for ioctls, and what sysfs says
 * about the nbd devices. */

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "contract.h"
#include "device-node.h"
#include "error-text.h"
#include "util/macro.h"


bool nbd_module_loaded(void) {
        return access("/sys/module/nbd", F_OK) == 0;
}

int nbd_device_is_free(int index) {
        char path[64];

        (void) snprintf(path, sizeof(path), "/sys/block/nbd%d", index);
        if (access(path, F_OK) < 0)
                return -errno;

        /* The kernel publishes "pid" while a connection runs. */
        (void) snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", index);
        if (access(path, F_OK) == 0)
                return 0;
        if (errno != ENOENT)
                return -errno;

        /* A device whose connection ended can still be held: a file
         * system unmounted lazily, or forced off it, keeps it open until
         * it is really gone, and the kernel keeps its configuration so
         * long, refusing a new one. Such a holder holds it exclusively,
         * and the kernel then refuses a second exclusive open. */
        _cleanup_close_ int fd = -EBADF;
        (void) snprintf(path, sizeof(path), "/dev/nbd%d", index);
        fd = open(path, O_RDONLY | O_EXCL | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0 && errno == EBUSY)
                return 0;
        return 1;
}

int nbd_device_open_path(const char *path, int *ret_fd, Error *error) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        /* PRIVILEGED: this descriptor carries nbd ioctls as root. */
        fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
                        return error_set(error, -ENODEV, "device %s: no such device", path);
                if (errno == ELOOP)
                        return error_set(error, -ENODEV, "device %s: is a symbolic link", path);
                return error_set(error, negative_errno(), "device %s: cannot open: %m", path);
        }

        if (fstat(fd, &st) < 0)
                return error_set(error, negative_errno(), "device %s: cannot stat: %m", path);
        if (!S_ISBLK(st.st_mode))
                return error_set(error, -ENODEV, "device %s: not a block device", path);
        if (major(st.st_rdev) != NBD_MAJOR_NUMBER)
                return error_set(error, -ENODEV, "device %s: not an nbd device (major %u)",
                            path, major(st.st_rdev));

        *ret_fd = TAKE_FD(fd);
        return 0;
}

int nbd_device_open(int index, int *ret_fd, Error *error) {
        char path[32];

        if (index < 0 || index > NBD_MAX_DEVICE_INDEX)
                return error_set(error, -EINVAL, "device index %d out of range", index);
        if (!nbd_module_loaded())
                return error_set(error, -ENODEV, "device /dev/nbd%d: the nbd kernel module is not loaded", index);

        (void) snprintf(path, sizeof(path), "/dev/nbd%d", index);
        return nbd_device_open_path(path, ret_fd, error);
}
