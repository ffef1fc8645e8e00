/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's copy of the error table in DESIGN.md's Errors section. It
 * stays private to this file: client_error_map_register() is the only
 * user, so taking the daemon's shared map instead changes one line. */
#include <errno.h>
#include <systemd/sd-bus.h>

#include "bus-errors.h"

static const sd_bus_error_map client_error_map[] = {
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.NotAuthorized", EACCES),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.InvalidArgument", EINVAL),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.NoSuchDevice", ENODEV),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.DeviceBusy", EBUSY),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.NotAttached", ENXIO),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.ConnectionRefused", ECONNREFUSED),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.HostNotFound", EHOSTUNREACH),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.TimedOut", ETIMEDOUT),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.ExportNotFound", ENOENT),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.ServerPolicy", EPERM),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.TLSRequired", EPROTONOSUPPORT),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.TLSFailed", ECONNABORTED),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.ProtocolError", EPROTO),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.Unsupported", EOPNOTSUPP),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.TooLarge", EFBIG),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.Cancelled", ECANCELED),
        SD_BUS_ERROR_MAP("org.nbdlink.NBD1.Error.Failed", EIO),
        SD_BUS_ERROR_MAP_END
};

int client_error_map_register(void) {
        return sd_bus_error_add_map(client_error_map);
}
