/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Escaping for the terminal. It decodes UTF-8 itself (utf8.h), with no
 * locale, so that what is escaped does not depend on anybody's LANG. */
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "utf8.h"

/* The longest form of one step: "\u{XXXX}". */
#define STEP_MAX 8

bool codepoint_is_control(uint32_t c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
                c == 0x061c ||                          /* Arabic letter mark */
                c == 0x200e || c == 0x200f ||           /* LRM, RLM */
                (c >= 0x202a && c <= 0x202e) ||         /* LRE, RLE, PDF, LRO, RLO */
                (c >= 0x2066 && c <= 0x2069);           /* LRI, RLI, FSI, PDI */
}

/* The visible form of the character or stray byte at s (n > 0 bytes left)
 * into out; returns how many bytes of s it stands for. */
static size_t escape_step(const char *s, size_t n, char out[static STEP_MAX + 1], size_t *ret_len) {
        uint32_t c;
        size_t k = utf8_decode(s, n, &c);

        if (k == 0) {
                /* One byte at a time: the next may begin a valid sequence. */
                *ret_len = (size_t) snprintf(out, STEP_MAX + 1, "\\x%02x", (unsigned char) *s);
                return 1;
        }
        if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
                out[0] = '\\';
                out[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
                *ret_len = 2;
        } else if (codepoint_is_control(c) && c < 0x80)
                *ret_len = (size_t) snprintf(out, STEP_MAX + 1, "\\x%02x", (unsigned) c);
        else if (codepoint_is_control(c))
                *ret_len = (size_t) snprintf(out, STEP_MAX + 1, "\\u{%04x}", (unsigned) c);
        else {
                memcpy(out, s, k);
                *ret_len = k;
        }
        return k;
}

char *escape_text(const char *s) {
        size_t n = strlen(s);
        /* A step turns at most one byte into four characters ("\xNN"); two
         * or three into eight ("\u{XXXX}"). */
        char *out = malloc(4 * n + 1), *o = out;

        if (!out)
                return NULL;
        while (n > 0) {
                char step[STEP_MAX + 1];
                size_t len, k = escape_step(s, n, step, &len);

                memcpy(o, step, len);
                o += len;
                s += k;
                n -= k;
        }
        *o = 0;
        return out;
}

void fputs_escaped(const char *s, FILE *f) {
        size_t n = strlen(s);

        while (n > 0) {
                char step[STEP_MAX + 1];
                size_t len, k = escape_step(s, n, step, &len);

                fwrite(step, 1, len, f);
                s += k;
                n -= k;
        }
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
