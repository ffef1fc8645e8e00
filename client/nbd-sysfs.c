/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbd devices as sysfs shows them. The kernel creates the pid attribute
 * when a device starts and removes it when it stops, whichever interface
 * (ioctl, netlink) set it up; nbd-client -c asks the same file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device-name.h"
#include "nbd-sysfs.h"
#include "util/macro.h"

const char *nbd_sysfs_root(void) {
        const char *root = secure_getenv("NBDLINK_TEST_SYSFS_ROOT");

        return root && *root ? root : "/sys";
}

/* The first line of DIR/NAME as a number: 0, -ENOENT when there is no
 * such file, else a negative errno. */
static int read_number(int dir_fd, const char *name, uint64_t *ret) {
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        char buf[32];
        ssize_t n;
        char *end;

        if (fd < 0)
                return -errno;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        errno = 0;
        *ret = strtoull(buf, &end, 10);
        if (errno != 0 || end == buf || (*end && *end != '\n'))
                return -EBADMSG;
        return 0;
}

int nbd_sysfs_read(const char *root, int index, NbdSysfsDevice *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -EBADF;
        uint64_t pid = 0, sectors = 0, ro = 0;
        int r;

        if (asprintf(&path, "%s/block/nbd%d", root, index) < 0)
                return -ENOMEM;
        *ret = (NbdSysfsDevice) { .index = index };

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        ret->exists = true;

        r = read_number(fd, "pid", &pid);
        if (r < 0 && r != -ENOENT)
                return r;
        ret->connected = r >= 0;
        ret->pid = r >= 0 ? (pid_t) pid : 0;

        /* In 512-byte sectors whatever the block size. */
        r = read_number(fd, "size", &sectors);
        if (r < 0 && r != -ENOENT)
                return r;
        if (sectors > UINT64_MAX / 512)
                return -EBADMSG;
        ret->size = sectors * 512;
        /* A size without a pid file: set up by a tool whose task is gone,
         * or by a kernel that shows no pid; it serves I/O all the same. */
        if (ret->size > 0)
                ret->connected = true;

        r = read_number(fd, "ro", &ro);
        if (r < 0 && r != -ENOENT)
                return r;
        ret->read_only = ro != 0;
        return 0;
}

static int sysfs_cmp(const void *a, const void *b) {
        const NbdSysfsDevice *x = a, *y = b;

        return (x->index > y->index) - (x->index < y->index);
}

int nbd_sysfs_list_connected(const char *root, NbdSysfsDevice **ret, size_t *ret_n) {
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ NbdSysfsDevice *list = NULL;
        size_t n = 0;
        DIR *d;
        struct dirent *de;
        int r = 0;

        if (asprintf(&path, "%s/block", root) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        return -errno;
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }

        while ((de = readdir(d))) {
                NbdSysfsDevice dev, *p;
                int index;

                /* Only what the bus API could name: "nbdN", N of 1-4 digits. */
                if (strncmp(de->d_name, "nbd", 3) != 0 || device_name_parse(de->d_name, &index) < 0)
                        continue;
                r = nbd_sysfs_read(root, index, &dev);
                if (r < 0)
                        break;
                if (!dev.connected)
                        continue;
                p = reallocarray(list, n + 1, sizeof(*list));
                if (!p) {
                        r = -ENOMEM;
                        break;
                }
                list = p;
                list[n++] = dev;
        }
        closedir(d);
        if (r < 0)
                return r;

        if (n > 1)
                qsort(list, n, sizeof(*list), sysfs_cmp);
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}
