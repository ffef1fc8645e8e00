/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization of bus callers: uid 0 is allowed, everyone else is asked
 * about through polkit's CheckAuthorization (daemon/polkit.c), and refused
 * whenever polkit cannot be asked. */

#include <errno.h>

#include "auth.h"
#include "bus-error.h"
#include "util/macro.h"

const char *auth_detach_action(uid_t caller, uid_t owner) {
        return caller == owner ? ACTION_DETACH : ACTION_DETACH_OTHER;
}

int auth_check(PolkitRegistry *registry, sd_bus_message *m, uid_t uid, const char *action,
               const char *const *details, sd_bus_error *error) {
        return polkit_registry_check(registry, m, uid, action, details, error);
}
