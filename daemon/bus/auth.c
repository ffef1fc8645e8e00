/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization of bus callers: uid 0 is allowed, everyone else is asked
 * about through polkit's CheckAuthorization (daemon/polkit.c), and refused
 * whenever polkit cannot be asked. */

#include <errno.h>
#include <stdio.h>

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

char *auth_describe_caller(sd_bus *driver, sd_bus_message *m, uid_t uid) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        const char *sender = sd_bus_message_get_sender(m), *unit = NULL;
        uint64_t mask = SD_BUS_CREDS_PID | SD_BUS_CREDS_UNIT | SD_BUS_CREDS_USER_UNIT | SD_BUS_CREDS_AUGMENT;
        char *s;

        if (sender && (driver ? sd_bus_get_name_creds(driver, sender, mask, &creds)
                              : sd_bus_query_sender_creds(m, mask, &creds)) >= 0 &&
            sd_bus_creds_get_user_unit(creds, &unit) < 0)
                (void) sd_bus_creds_get_unit(creds, &unit);

        if (asprintf(&s, "uid %u, unit %s", (unsigned) uid, unit ?: "unknown") < 0)
                return NULL;
        return s;
}
