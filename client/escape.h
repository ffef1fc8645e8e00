/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one visible form in which nbdlink writes text for people: whatever a
 * server, the daemon or a command line put into it, it cannot move the
 * cursor, retitle the window, hide itself or reorder the line. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util/macro.h"

/* Whether code point c is a control a terminal acts on, or a bidirectional
 * formatting character that reorders what it shows: C0, DEL, C1 (U+0080 to
 * U+009F), U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069.
 * JSON output escapes the same code points. */
bool codepoint_is_control(uint32_t c);

/* A copy of s in the visible form: "\n", "\r" and "\t" for those three;
 * "\xNN" for the other C0 controls, DEL, and each byte that is not part of
 * valid UTF-8; "\u{XXXX}" for C1 and bidirectional controls; "\\" for a
 * backslash, so that the form reads back unambiguously. Everything else,
 * printable UTF-8 of any width included, stays as it is. NULL when out of
 * memory. */
char *escape_text(const char *s);

/* Writes s to f in that form. */
void fputs_escaped(const char *s, FILE *f);

/* Formats like fprintf() and writes the result in that form, so that no
 * argument needs escaping on its own; the caller writes the newline. On
 * running out of memory writes "?". */
_printf_(2, 3) void fprintf_escaped(FILE *f, const char *fmt, ...);
_printf_(2, 0) void vfprintf_escaped(FILE *f, const char *fmt, va_list ap);
