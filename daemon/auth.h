/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who may do what. One function decides, through an asynchronous polkit
 * check: it may answer later, by re-dispatching the message. */
#pragma once

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-bus.h>

#include "polkit.h"

#define ACTION_ATTACH       POLKIT_ACTION_ATTACH
#define ACTION_DETACH       POLKIT_ACTION_DETACH
#define ACTION_DETACH_OTHER POLKIT_ACTION_DETACH_OTHER
#define ACTION_LIST         POLKIT_ACTION_LIST

/* The caller's uid, from the bus's view of the sender. */
int bus_sender_uid(sd_bus_message *m, uid_t *ret);

/* 1: allowed, go on. 0: the answer is pending and the message will be
 * dispatched again when it comes (the handler returns 1 and waits; if the
 * caller leaves meanwhile, the handler never runs again). Negative: refused,
 * with error set (NotAuthorized, or InteractiveAuthorizationRequired when
 * polkit would have asked for a password but the call did not allow it).
 * Root is allowed without asking polkit. `details` is NULL or "device",
 * "/dev/nbdN", "host", ..., "export", ..., NULL: what the authentication
 * agent shows, and what polkit rules can look up. */
int auth_check(PolkitRegistry *registry, sd_bus_message *m, const char *action,
               const char *const *details, sd_bus_error *error);
