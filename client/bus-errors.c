/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client uses the error map common/ shares with the daemon, so that
 * both sides always agree on the org.nbdlink.NBD1.Error.* names. */
#include "bus-errors.h"
#include "error-names.h"

int client_error_map_register(void) {
        return nbdlink_bus_error_register();
}
