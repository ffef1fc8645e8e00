/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Authorization of bus callers. Today: uid 0 is allowed, everyone else is
 * refused (never allowed by default); polkit's CheckAuthorization slots in
 * here without changing any handler. */

#include <errno.h>

#include "auth.h"
#include "bus-error.h"
#include "util/macro.h"

int bus_sender_uid(sd_bus_message *m, uid_t *ret) {
        sd_bus_creds *creds = NULL;
        uid_t uid;
        int r;

        /* Only what the bus itself vouches for (the peer credentials of the
         * caller's connection): no SD_BUS_CREDS_AUGMENT, which would fill
         * gaps from /proc/PID — racy against PID reuse, and a dozen system
         * calls on every method call. */
        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID | SD_BUS_CREDS_UID, &creds);
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

int auth_check(sd_bus_message *m, const char *action, sd_bus_error *error) {
        uid_t uid;
        int r;

        r = bus_sender_uid(m, &uid);
        if (r < 0)
                return nbdlink_bus_error_setf(error, -EACCES, "cannot tell who is calling (%s): %s",
                                              action, strerror(-r));
        return auth_check_uid(m, uid, action, error);
}

int auth_check_uid(sd_bus_message *m, uid_t uid, const char *action, sd_bus_error *error) {
        if (uid == 0)
                return 1;

        return nbdlink_bus_error_setf(error, -EACCES, "uid %u is not allowed to %s", (unsigned) uid, action);
}
