/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 by hand (RFC 3629), with no locale, so that results do not depend
 * on anybody's LANG: nbdlinkd checks and mends what goes onto the bus,
 * nbdlink what goes into tables and JSON. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

size_t utf8_decode(const char *s, size_t n, uint32_t *ret) {
        const unsigned char *p = (const unsigned char *) s;
        uint32_t c, min;
        size_t len;

        if (n == 0)
                return 0;

        if (p[0] < 0x80) {
                *ret = p[0];
                return 1;
        }
        if ((p[0] & 0xe0) == 0xc0) {
                len = 2, c = p[0] & 0x1f, min = 0x80;
        } else if ((p[0] & 0xf0) == 0xe0) {
                len = 3, c = p[0] & 0x0f, min = 0x800;
        } else if ((p[0] & 0xf8) == 0xf0) {
                len = 4, c = p[0] & 0x07, min = 0x10000;
        } else
                return 0;

        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
                return 0;

        *ret = c;
        return len;
}

bool utf8_is_valid(const char *s, size_t n) {
        while (n > 0) {
                uint32_t c;
                size_t k = utf8_decode(s, n, &c);

                if (k == 0 || c == 0)
                        return false;
                s += k;
                n -= k;
        }
        return true;
}

size_t utf8_width(const char *s) {
        size_t n = strlen(s), w = 0;

        while (n > 0) {
                uint32_t c;
                size_t k = utf8_decode(s, n, &c);

                if (k == 0)
                        k = 1;
                s += k;
                n -= k;
                w++;
        }
        return w;
}

bool unicode_is_control(uint32_t c) {
        return c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
                c == 0x061c ||                          /* ARABIC LETTER MARK */
                c == 0x200e || c == 0x200f ||           /* LRM, RLM */
                (c >= 0x202a && c <= 0x202e) ||         /* LRE, RLE, PDF, LRO, RLO */
                (c >= 0x2066 && c <= 0x2069);           /* LRI, RLI, FSI, PDI */
}

void utf8_trim_partial(char *s) {
        size_t n = strlen(s), start = n;
        uint32_t c;

        /* Back up over at most three continuation bytes, and the lead byte
         * before them: that is where the last sequence starts. */
        while (start > 0 && n - start < 3 && ((unsigned char) s[start - 1] & 0xc0) == 0x80)
                start--;
        if (start > 0 && ((unsigned char) s[start - 1] & 0xc0) == 0xc0)
                start--;
        if (start == n)
                return;         /* it ends in ASCII */
        if (utf8_decode(s + start, n - start, &c) != n - start)
                s[start] = 0;
}

bool utf8_needs_escape(const char *s) {
        size_t n = strlen(s);

        while (n > 0) {
                uint32_t c;
                size_t k = utf8_decode(s, n, &c);

                if (k == 0 || unicode_is_control(c))
                        return true;
                s += k;
                n -= k;
        }
        return false;
}

char *utf8_escape_n(const char *s, size_t n) {
        char *ret, *q;

        /* At most four bytes out for each byte in: "\\xNN" for one byte,
         * "\\u0085" for two, "\\u202E" for three. */
        if (n > (SIZE_MAX - 1) / 4)
                return NULL;
        ret = q = malloc(4 * n + 1);
        if (!ret)
                return NULL;
        while (n > 0) {
                uint32_t c;
                size_t k = utf8_decode(s, n, &c);

                if (k == 0) {
                        q += sprintf(q, "\\x%02x", (unsigned char) *s);
                        k = 1;
                } else if (c < 0x80 && unicode_is_control(c))
                        q += sprintf(q, "\\x%02x", (unsigned) c);
                else if (unicode_is_control(c))
                        q += sprintf(q, "\\u%04X", (unsigned) c);
                else {
                        memcpy(q, s, k);
                        q += k;
                }
                s += k;
                n -= k;
        }
        *q = 0;
        return ret;
}

char *utf8_escape(const char *s) {
        return utf8_escape_n(s, strlen(s));
}
