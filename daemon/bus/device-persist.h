/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The main-thread side of persistent devices: the netlink multicast watch
 * for NBD_CMD_LINK_DEAD, starting reconnect workers, the state files, and
 * finding the devices again when nbdlinkd starts. Main thread only. */
#pragma once

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
                           char *error, size_t error_size);

/* The persistent attach was answered: write the state file (and start a
 * reconnect at once when the link died in the meantime). */
void device_persist_attached(Device *d);
/* WORKER_RECONNECT reported. Returns true when it handled the event (and
 * may have freed d). */
bool device_persist_on_worker_event(Device *d, WorkerEvent *e);
/* nbdlinkd is exiting: an attached persistent device stays with the
 * kernel (its object goes, its state file stays), a reconnect in progress
 * is cancelled without disconnecting. Returns false for devices it does
 * not handle (not persistent, or still attaching). May free d. */
bool device_persist_leave(Device *d);
/* The device is gone for good: forget its state file. */
void device_persist_forget(Device *d);

/* Re-creates the objects of the persistent devices that outlived an
 * earlier nbdlinkd, as their state files and the kernel agree, and resumes
 * reconnects that were under way. Stale state files are removed. */
int manager_restore_persistent(Manager *m);
