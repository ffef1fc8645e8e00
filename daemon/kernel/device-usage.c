/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device-usage.h"
#include "util/macro.h"

#define MAX_PARTS 256

/* root, then the rest as printf() makes it: NULL when out of memory. */
_printf_(2, 3) static char *path_in(const char *root, const char *format, ...) {
        _cleanup_free_ char *rest = NULL;
        va_list ap;
        char *p;
        int r;

        va_start(ap, format);
        r = vasprintf(&rest, format, ap);
        va_end(ap);
        if (r < 0 || asprintf(&p, "%s%s", root, rest) < 0)
                return NULL;
        return p;
}

typedef struct Part {
        char name[32];                  /* "nbd0", "nbd0p1" */
        unsigned major, minor;
} Part;

/* The whole device and its partitions, from sysfs. */
static int list_parts(const char *root, int index, Part *parts, size_t *n) {
        _cleanup_(closedirp) DIR *d = NULL;
        _cleanup_free_ char *dir = path_in(root, "/sys/block/nbd%d", index);
        struct dirent *de;

        *n = 0;
        if (!dir)
                return -ENOMEM;
        d = opendir(dir);
        if (!d)
                return -errno;
        (void) snprintf(parts[(*n)++].name, sizeof(parts[0].name), "nbd%d", index);
        while ((de = readdir(d)) && *n < MAX_PARTS) {
                char prefix[32];

                (void) snprintf(prefix, sizeof(prefix), "nbd%dp", index);
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0 && strlen(de->d_name) < sizeof(parts[0].name))
                        (void) snprintf(parts[(*n)++].name, sizeof(parts[0].name), "%s", de->d_name);
        }

        for (size_t i = 0; i < *n; i++) {
                _cleanup_free_ char *path = i == 0 ? path_in(root, "/sys/block/nbd%d/dev", index)
                                                   : path_in(root, "/sys/block/nbd%d/%s/dev", index, parts[i].name);
                _cleanup_fclose_ FILE *f = NULL;

                if (!path)
                        return -ENOMEM;
                f = fopen(path, "re");
                if (!f || fscanf(f, "%u:%u", &parts[i].major, &parts[i].minor) != 2)
                        parts[i].major = parts[i].minor = (unsigned) -1;
        }
        return 0;
}

static int find_mount(const char *root, const Part *parts, size_t n, Error *error) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *line = NULL, *path = path_in(root, "/proc/self/mountinfo");
        size_t size = 0;

        if (!path)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        /* "36 35 43:1 / /media/disk rw,nosuid - ext4 /dev/nbd0p1 rw" */
        while (getline(&line, &size, f) > 0) {
                unsigned major, minor;
                char point[4096];

                if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &major, &minor, point) != 3)
                        continue;
                for (size_t i = 0; i < n; i++)
                        if (parts[i].major == major && parts[i].minor == minor)
                                /* The mount point as mountinfo escapes it
                                 * (\040 for a space): never raw. */
                                return error_set(error, -EBUSY, "/dev/%s is mounted on %s", parts[i].name, point);
        }
        return 0;
}

static int find_holder(const char *root, int index, const Part *parts, size_t n, Error *error) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = i == 0 ? path_in(root, "/sys/block/nbd%d/holders", index)
                                                   : path_in(root, "/sys/block/nbd%d/%s/holders", index, parts[i].name);
                _cleanup_(closedirp) DIR *d = NULL;
                struct dirent *de;

                if (!path)
                        return -ENOMEM;
                d = opendir(path);
                if (!d)
                        continue;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.')
                                return error_set(error, -EBUSY, "/dev/%s is held by %s", parts[i].name, de->d_name);
        }
        return 0;
}

/* What no list shows: a mount in another mount namespace, a swap area, a
 * program that opened the device with O_EXCL. The kernel refuses a second
 * exclusive opener, so asking for one tells. */
static int find_exclusive(const char *root, const Part *parts, size_t n, Error *error) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = path_in(root, "/dev/%s", parts[i].name);
                _cleanup_close_ int fd = -EBADF;

                if (!path)
                        return -ENOMEM;
                fd = open(path, O_RDONLY | O_EXCL | O_NONBLOCK | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
                if (fd < 0 && errno == EBUSY)
                        return error_set(error, -EBUSY, "/dev/%s is open exclusively by another program", parts[i].name);
        }
        return 0;
}

int nbd_device_usage(const char *root, int index, Error *error) {
        Part parts[MAX_PARTS];
        size_t n;
        int r;

        r = list_parts(root, index, parts, &n);
        if (r < 0)
                return r;
        /* Without mountinfo (no /proc) the exclusive open below still
         * catches a mount. */
        r = find_mount(root, parts, n, error);
        if (r != 0 && r != -ENOENT)
                return r;
        r = find_holder(root, index, parts, n, error);
        if (r != 0)
                return r;
        return find_exclusive(root, parts, n, error);
}
