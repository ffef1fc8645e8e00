/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization of bus callers: uid 0 is allowed, everyone else is asked
 * about through polkit's CheckAuthorization (daemon/polkit.c), and refused
 * whenever polkit cannot be asked. */

#include <errno.h>

#include "auth.h"
#include "bus-error.h"
#include "util/macro.h"

int bus_sender_uid(sd_bus_message *m, uid_t *ret) {
        sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID | SD_BUS_CREDS_AUGMENT, &creds);
        if (r < 0)
                return r;
        r = sd_bus_creds_get_euid(creds, &uid);
        if (r < 0)
                r = sd_bus_creds_get_uid(creds, &uid);
        sd_bus_creds_unref(creds);
        if (r < 0)
                return r;
        *ret = uid;
        return 0;
}

int auth_check(PolkitRegistry *registry, sd_bus_message *m, const char *action,
               const char *const *details, sd_bus_error *error) {
        return polkit_registry_check(registry, m, action, details, error);
}
