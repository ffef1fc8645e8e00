/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The single function that turns a negative errno plus a message into a
 * D-Bus error (names in common/error-names.h). */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bus-error.h"
#include "utf8.h"
#include "util/macro.h"

int nbdlink_bus_error_set(sd_bus_error *e, int r, const char *message) {
        _cleanup_free_ char *clean = NULL;
        const char *name, *fallback;

        if (r >= 0)
                r = -EIO;       /* a caller bug, but never answer success by accident */

        switch (r) {
        case NBDLINK_ERR_INTERACTIVE_REQUIRED:
                name = SD_BUS_ERROR_INTERACTIVE_AUTHORIZATION_REQUIRED;
                fallback = "interactive authorization required";
                break;
        case NBDLINK_ERR_LIMIT_EXCEEDED:
                name = NBDLINK_ERROR_LIMIT_EXCEEDED;
                fallback = "too many calls in flight";
                break;
        default:
                name = nbdlink_bus_error_name_from_errno(r);
                fallback = strerror(-r);
        }
        if (!message || !*message)
                message = fallback;

        /* sd-bus refuses to send a string that is not UTF-8, and the
         * caller would get a bare error instead of ours; and a name the
         * caller or a server chose may hold controls that would rewrite the
         * terminal or dialog that shows the error. Every error passes
         * here, so here both are mended. */
        if (utf8_needs_escape(message)) {
                clean = utf8_escape(message);
                message = clean ?: fallback;
        }

        (void) sd_bus_error_set(e, name, message);
        return r;
}

int nbdlink_bus_error_setf(sd_bus_error *e, int r, const char *format, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(&msg, format, ap);
        va_end(ap);
        if (k < 0)
                msg = NULL;

        return nbdlink_bus_error_set(e, r, msg);
}
