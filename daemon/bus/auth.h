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

/* Which action a Detach needs: ACTION_DETACH when `caller` is the uid that
 * attached the device (`owner`), ACTION_DETACH_OTHER otherwise. A Detach of a
 * device nbdlinkd does not know is checked as ACTION_DETACH (pass the
 * caller's own uid as owner): it ends in NotAttached, and nobody is harmed. */
const char *auth_detach_action(uid_t caller, uid_t owner);

/* 1: allowed, go on. 0: the answer is pending and the message will be
 * dispatched again when it comes (the handler returns 1 and waits; if the
 * caller leaves meanwhile, the handler never runs again). Negative: refused,
 * with error set (NotAuthorized, or InteractiveAuthorizationRequired when
 * polkit would have asked for a password but the call did not allow it).
 * `uid` is the caller's, from bus_sender_uid(); root is allowed without
 * asking polkit. `details` is NULL or "device",
 * "/dev/nbdN", "host", ..., "export", ..., NULL: what the authentication
 * agent shows, and what polkit rules can look up. */
int auth_check(PolkitRegistry *registry, sd_bus_message *m, uid_t uid, const char *action,
               const char *const *details, sd_bus_error *error);

/* Who is calling, for log lines: "uid 1000, unit session-2.scope" (the
 * user unit when there is one, the system unit otherwise). The unit comes
 * from /proc by the caller's pid, so it only describes, and never
 * decides anything. `driver` as for bus_sender_uid(). NULL when out of
 * memory. */
char *auth_describe_caller(sd_bus *driver, sd_bus_message *m, uid_t uid);
