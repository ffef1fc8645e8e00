/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization of bus callers: uid 0 is allowed, everyone else is asked
 * about through polkit's CheckAuthorization (daemon/polkit.c), and refused
 * whenever polkit cannot be asked. */

#include <errno.h>

#include "auth.h"
#include "bus-error.h"
#include "util/macro.h"

int bus_sender_uid(sd_bus_message *m, uid_t *ret) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        /* Same source as polkit.c's check: the uid that decides "root needs
         * no polkit", the one polkit is asked about and the recorded owner
         * must never differ. */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return r;
        if (sd_bus_creds_get_augmented_mask(creds) & SD_BUS_CREDS_EUID)
                return -EPERM;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                return r;
        *ret = uid;
        return 0;
}

const char *auth_detach_action(uid_t caller, uid_t owner) {
        return caller == owner ? ACTION_DETACH : ACTION_DETACH_OTHER;
}

int auth_check(PolkitRegistry *registry, sd_bus_message *m, const char *action,
               const char *const *details, sd_bus_error *error) {
        return polkit_registry_check(registry, m, action, details, error);
}
