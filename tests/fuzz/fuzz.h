/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every fuzz target shares: the libFuzzer entry point (which the
 * corpus replay test calls without libFuzzer) and an assertion that stays
 * on in every build type, since a fuzzer finds bugs only by crashing. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                                \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n",                \
                                __FILE__, __LINE__, #expr);                             \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* Whether s is UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF). sd-bus refuses to send a string that is not, so any
 * text that reaches a caller must be. */
static inline int fuzz_utf8_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                unsigned n, c = *p;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3;
                else
                        return 0;
                for (unsigned i = 1; i <= n; i++)
                        if ((p[i] & 0xc0) != 0x80)
                                return 0;
                if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) ||
                    (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
                        return 0;
                p += n + 1;
        }
        return 1;
}
