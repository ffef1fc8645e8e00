/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error table of docs/errors.md as an sd_bus_error_map: the
 * org.nbdlink.NBD1.Error.* names and their errno values, the same for the
 * daemon, the client and the tests. */

#include <errno.h>

#include "error-names.h"

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
        /* Only for clients: the daemon picks this name by its own failure
         * code (error-text.h), never by an errno from elsewhere. */
        SD_BUS_ERROR_MAP(NBDLINK_ERROR_LIMIT_EXCEEDED,     EUSERS),
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
