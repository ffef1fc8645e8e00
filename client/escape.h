/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How nbdlink writes text for people: whatever a server, the daemon or a
 * command line put into it, it cannot move the cursor, retitle the window,
 * hide itself or reorder the line. The form is the daemon's own
 * (utf8_escape() in common/utf8.h), so that a message the daemon escaped
 * already reads the same after nbdlink has escaped it again. */
#pragma once

#include <stdarg.h>
#include <stdio.h>

#include "util/macro.h"

/* A copy of s in that form: \xNN for C0 controls, DEL and bytes that are
 * not UTF-8; \uNNNN for C1 and bidirectional controls; everything else,
 * printable UTF-8 of any width included, as it is. NULL when out of
 * memory. */
char *escape_text(const char *s);

/* Writes s to f in that form. */
void fputs_escaped(const char *s, FILE *f);

/* Formats like fprintf() and writes the result in that form, so that no
 * argument needs escaping on its own; the caller writes the newline. On
 * running out of memory writes "?". */
_printf_(2, 3) void fprintf_escaped(FILE *f, const char *fmt, ...);
_printf_(2, 0) void vfprintf_escaped(FILE *f, const char *fmt, va_list ap);
