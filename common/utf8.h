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

/* Code points that steer how the text around them is shown instead of
 * being shown: C0 controls, DEL, C1 controls (one of them, U+009B, starts
 * a terminal escape sequence like ESC [), and the bidi controls that make
 * a terminal or a dialog show text in another order than it is. */
bool unicode_is_control(uint32_t c);

/* A copy of s for a log line, a polkit detail or an error message, where
 * a name the caller or a server chose must show as what it is: each C0
 * control, DEL and byte of broken UTF-8 as \xNN, each C1 or bidi control
 * as \uNNNN (upper-case hex); everything else as it is. NULL when out of
 * memory. */
char *utf8_escape(const char *s);
/* The same for n bytes that may hold anything, NUL included (\x00): text
 * a server sent as prose, its error messages and descriptions. */
char *utf8_escape_n(const char *s, size_t n);

/* Whether utf8_escape() would change s. */
bool utf8_needs_escape(const char *s);

/* snprintf() cuts by bytes: drops a multi-byte sequence that such a cut
 * left incomplete at the end of s. */
void utf8_trim_partial(char *s);
