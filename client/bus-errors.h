/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Teaches sd-bus the org.nbdlink.NBD1.Error.* names so that
 * sd_bus_error_get_errno() turns a daemon error into its errno. */
#pragma once

/* Registers the error map once per process. 0 or negative errno. */
int client_error_map_register(void);
