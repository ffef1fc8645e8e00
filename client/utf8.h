/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 checks for strings that go on the bus (which only carries valid
 * UTF-8) and into JSON output. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s (at most n bytes). Returns its length in
 * bytes and stores it in *ret, or returns 0 for an invalid, overlong,
 * surrogate or truncated sequence. */
size_t utf8_decode(const char *s, size_t n, uint32_t *ret);

/* True when the n bytes are valid UTF-8 without NUL. */
bool utf8_is_valid(const char *s, size_t n);

/* Number of code points, counting each invalid byte as one: an
 * approximation of the display width good enough for table columns. */
size_t utf8_width(const char *s);
