/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* DESIGN.md's error table as an sd_bus_error_map, and the single function
 * that turns a negative errno plus a message into a D-Bus error. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus-error.h"
#include "utf8.h"
#include "util/macro.h"

const sd_bus_error_map nbdlink_bus_error_map[] = {
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_NOT_AUTHORIZED,     EACCES),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_INVALID_ARGUMENT,   EINVAL),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_NO_SUCH_DEVICE,     ENODEV),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_DEVICE_BUSY,        EBUSY),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_NOT_ATTACHED,       ENXIO),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_CONNECTION_REFUSED, ECONNREFUSED),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_HOST_NOT_FOUND,     EHOSTUNREACH),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_TIMED_OUT,          ETIMEDOUT),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_EXPORT_NOT_FOUND,   ENOENT),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_SERVER_POLICY,      EPERM),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_TLS_REQUIRED,       EPROTONOSUPPORT),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_TLS_FAILED,         ECONNABORTED),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_PROTOCOL_ERROR,     EPROTO),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_UNSUPPORTED,        EOPNOTSUPP),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_TOO_LARGE,          EFBIG),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_CANCELLED,          ECANCELED),
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_FAILED,             EIO),
        SD_BUS_ERROR_MAP_END
};

int nbdlink_bus_error_register(void) {
        /* Returns 0 when the same map was added before, which is fine. */
        int r = sd_bus_error_add_map(nbdlink_bus_error_map);
        return r < 0 ? r : 0;
}

const char *nbdlink_bus_error_name_from_errno(int error) {
        if (error < 0)
                error = -error;

        /* ENOTSUP and EOPNOTSUPP are the same number on Linux; ENOMEDIUM
         * and the like are "Failed". ENXIO from a missing device node is
         * mapped by the caller before it gets here. */
        for (const sd_bus_error_map *m = nbdlink_bus_error_map; m->name; m++)
                if (m->code == error)
                        return m->name;

        return NBDLINK_ERROR_FAILED;
}

int nbdlink_bus_error_set(sd_bus_error *e, int r, const char *message) {
        _cleanup_free_ char *clean = NULL;

        if (r >= 0)
                r = -EIO;       /* a caller bug, but never answer success by accident */

        if (!message || !*message)
                message = strerror(-r);

        /* sd-bus refuses to send a string that is not UTF-8, and the
         * caller would get a bare error instead of ours: whatever slipped
         * through upstream is mended here, where every error passes. */
        if (!utf8_is_valid(message, strlen(message))) {
                clean = utf8_sanitize(message, strlen(message));
                message = clean ?: strerror(-r);
        }

        (void) sd_bus_error_set(e, nbdlink_bus_error_name_from_errno(r), message);
        return r;
}

int nbdlink_bus_error_setf(sd_bus_error *e, int r, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                msg = NULL;

        return nbdlink_bus_error_set(e, r, msg);
}
