/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Persistent devices seen from outside a Device: the netlink multicast
 * watch for NBD_CMD_LINK_DEAD, the backend identifier, and finding the
 * devices again when nbdlinkd starts. Main thread only. */
#pragma once

#include "error-text.h"
#include "device.h"
#include "manager.h"

/* Opens the nbd netlink family and watches its multicast group on the
 * event loop, once; a later call after a failure (nbd not loaded yet)
 * tries again. */
int manager_netlink_watch(Manager *m);

/* The backend identifier for an attach of export on host (as the caller
 * wrote it) with the option port. -EINVAL with a message for a host that
 * does not parse. */
int device_persist_backend(const char *host, uint16_t port, const char *export_name, char **ret,
                           Error *error);

/* Re-creates the objects of the persistent devices that outlived an
 * earlier nbdlinkd, as their state files and the kernel agree, and resumes
 * reconnects that were under way. Stale state files are removed. */
int manager_restore_persistent(Manager *m);
