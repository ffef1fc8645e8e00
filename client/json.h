/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A small streaming JSON writer for --json output: objects, arrays and
 * scalars written in order, strings escaped per RFC 8259 and beyond it,
 * as \uXXXX, every control and bidirectional mark that escape.h names. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct JsonWriter {
        FILE *f;
        bool pretty;            /* newlines and two-space indent; else one line */
        unsigned depth;
        bool first[JSON_MAX_DEPTH];
        bool after_key;
} JsonWriter;

void json_init(JsonWriter *w, FILE *f, bool pretty);

void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_begin_array(JsonWriter *w);
void json_end_array(JsonWriter *w);
/* Inside an object: the next value's key. */
void json_key(JsonWriter *w, const char *key);

void json_string(JsonWriter *w, const char *s);
/* A string of n bytes that may contain NUL or invalid UTF-8 (shown as
 * \u0000 and U+FFFD). */
void json_string_len(JsonWriter *w, const char *s, size_t n);
void json_uint(JsonWriter *w, uint64_t v);
void json_int(JsonWriter *w, int64_t v);
/* NaN and infinities, which JSON cannot express, become null. */
void json_double(JsonWriter *w, double d);
void json_bool(JsonWriter *w, bool b);
void json_null(JsonWriter *w);

/* Ends the document with a newline. */
void json_finish(JsonWriter *w);

/* Writes s as a JSON string literal (with quotes) to f. */
void json_write_escaped(FILE *f, const char *s, size_t n);
