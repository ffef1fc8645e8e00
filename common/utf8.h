/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 for strings that go onto the bus (which carries nothing else),
 * into JSON output and into tables. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s (at most n bytes). Returns its length in
 * bytes and stores it in *ret, or returns 0 for an invalid, overlong,
 * surrogate or truncated sequence. */
size_t utf8_decode(const char *s, size_t n, uint32_t *ret);

/* True when the n bytes are valid UTF-8 without NUL, as the NBD spec
 * demands of names and D-Bus of every string. */
bool utf8_is_valid(const char *s, size_t n);

/* Number of code points, counting each invalid byte as one: an
 * approximation of the display width good enough for table columns. */
size_t utf8_width(const char *s);

/* A copy of text meant for people (a server's error message or
 * description, a message on its way onto the bus) with control characters
 * and broken UTF-8 replaced by '?'. NULL when out of memory. */
char *utf8_sanitize(const char *s, size_t n);

/* snprintf() cuts by bytes: drops a multi-byte sequence that such a cut
 * left incomplete at the end of s. */
void utf8_trim_partial(char *s);
