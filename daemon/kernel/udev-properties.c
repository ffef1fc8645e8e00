/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The per-device udev properties file (udev-properties.h). */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-util.h"
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

int udev_properties_write(const char *state_dir, const UdevDeviceInfo *info) {
        _cleanup_free_ char *text = NULL, *dir = NULL;
        char name[32];

        text = udev_properties_format(info);
        if (!text)
                return -ENOMEM;
        if (asprintf(&dir, "%s/" UDEV_PROPERTIES_SUBDIR, state_dir) < 0) {
                dir = NULL;
                return -ENOMEM;
        }
        if (mkdir(state_dir, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        (void) snprintf(name, sizeof(name), "nbd%d", info->index);
        /* What the bus already shows anyone: the device's owner, server
         * and export. */
        return write_file_atomic(dir, name, text, 0644);
}

int udev_properties_remove(const char *state_dir, int index) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/" UDEV_PROPERTIES_SUBDIR "/nbd%d", state_dir, index) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
