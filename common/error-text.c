/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The Error of error-text.h. */

#include <stdarg.h>
#include <stdio.h>

#include "error-text.h"
#include "utf8.h"

int error_set(Error *e, int code, const char *format, ...) {
        va_list ap;

        if (!e)
                return code;
        e->code = code;
        va_start(ap, format);
        (void) vsnprintf(e->message, sizeof(e->message), format, ap);
        va_end(ap);
        /* Cut by bytes, maybe inside a caller's or a server's name. */
        utf8_trim_partial(e->message);
        return code;
}

const char *error_message(const Error *e) {
        return e ? e->message : "";
}
