/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The message half of a failure (error-text.h). */

#include <stdarg.h>
#include <stdio.h>

#include "error-text.h"
#include "utf8.h"

int error_setf(char *error, size_t error_size, int r, const char *format, ...) {
        va_list ap;

        if (!error || error_size == 0)
                return r;
        va_start(ap, format);
        (void) vsnprintf(error, error_size, format, ap);
        va_end(ap);
        /* Cut by bytes, maybe inside a caller's or a server's name. */
        utf8_trim_partial(error);
        return r;
}
