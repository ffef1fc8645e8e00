/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-device udev properties file (udev-properties.h). */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "udev-properties.h"
#include "utf8.h"
#include "util/macro.h"

char *udev_properties_format(const UdevDeviceInfo *info) {
        _cleanup_free_ char *host = NULL, *export_name = NULL, *server = NULL;
        const char *shown;
        char *text;

        host = utf8_escape(info->host ?: "");
        export_name = utf8_escape(info->export_name ?: "");
        if (!host || !export_name)
                return NULL;
        /* IPv6 literals take brackets before a port, as in a URI. */
        if (info->port > 0 && host[0] != '/')
                if (asprintf(&server, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, info->port) < 0)
                        return NULL;
        /* The name a file manager shows: the export, or, for a server's
         * default export (the empty name), what it is. */
        shown = *export_name ? export_name : "NBD disk";

        if (asprintf(&text,
                     "NBDLINK_OWNER_UID=\"%" PRIu32 "\"\n"
                     "NBDLINK_SERVER=\"%s\"\n"
                     "NBDLINK_EXPORT=\"%s\"\n"
                     "NBDLINK_NAME=\"%s on %s\"\n",
                     info->owner_uid, server ?: host, export_name, shown, host) < 0)
                return NULL;
        return text;
}

static int properties_path(const char *state_dir, int index, const char *prefix, char **ret) {
        if (asprintf(ret, "%s/" UDEV_PROPERTIES_SUBDIR "/%snbd%d%s", state_dir, prefix, index,
                     *prefix ? ".XXXXXX" : "") < 0) {
                *ret = NULL;
                return -ENOMEM;
        }
        return 0;
}

int udev_properties_write(const char *state_dir, const UdevDeviceInfo *info) {
        _cleanup_free_ char *text = NULL, *dir = NULL, *path = NULL, *tmp = NULL;
        _cleanup_close_ int fd = -EBADF;
        size_t len;
        int r;

        text = udev_properties_format(info);
        if (!text)
                return -ENOMEM;
        if (asprintf(&dir, "%s/" UDEV_PROPERTIES_SUBDIR, state_dir) < 0) {
                dir = NULL;
                return -ENOMEM;
        }
        r = properties_path(state_dir, info->index, "", &path);
        if (r < 0)
                return r;
        r = properties_path(state_dir, info->index, ".", &tmp);
        if (r < 0)
                return r;

        if (mkdir(state_dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        /* What the bus already shows anyone: the device's owner, server
         * and export. */
        (void) fchmod(fd, 0644);
        len = strlen(text);
        if (write(fd, text, len) != (ssize_t) len) {
                r = errno > 0 ? -errno : -EIO;
                (void) unlink(tmp);
                return r;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

int udev_properties_remove(const char *state_dir, int index) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = properties_path(state_dir, index, "", &path);
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
