/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escaping for the terminal. It decodes UTF-8 itself (utf8.h), with no
 * locale, so that what is escaped does not depend on anybody's LANG. */
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

char *escape_text(const char *s) {
        return utf8_escape(s);
}

void fputs_escaped(const char *s, FILE *f) {
        _cleanup_free_ char *e = utf8_escape(s);

        fputs(e ?: "?", f);
}

void vfprintf_escaped(FILE *f, const char *fmt, va_list ap) {
        _cleanup_free_ char *s = NULL;

        if (vasprintf(&s, fmt, ap) < 0) {
                /* Out of memory: a mark that something is missing. */
                fputc('?', f);
                return;
        }
        fputs_escaped(s, f);
}

void fprintf_escaped(FILE *f, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vfprintf_escaped(f, fmt, ap);
        va_end(ap);
}
