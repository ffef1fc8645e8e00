/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Streaming JSON writer. Strings on the bus are valid UTF-8 already, but
 * anything that came from elsewhere may not be, so escaping never trusts
 * its input. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "escape.h"
#include "json.h"
#include "utf8.h"

void json_init(JsonWriter *w, FILE *f, bool pretty) {
        *w = (JsonWriter) { .f = f, .pretty = pretty };
        w->first[0] = true;
}

static void indent(JsonWriter *w) {
        if (!w->pretty)
                return;
        fputc('\n', w->f);
        for (unsigned i = 0; i < w->depth; i++)
                fputs("  ", w->f);
}

/* Separator and indentation before a value or a key. */
static void before_item(JsonWriter *w) {
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (w->depth == 0)
                return;
        if (!w->first[w->depth])
                fputc(',', w->f);
        w->first[w->depth] = false;
        indent(w);
}

static void open_container(JsonWriter *w, char c) {
        before_item(w);
        fputc(c, w->f);
        if (w->depth + 1 < JSON_MAX_DEPTH)
                w->depth++;
        w->first[w->depth] = true;
}

static void close_container(JsonWriter *w, char c) {
        bool empty = w->first[w->depth];

        if (w->depth > 0)
                w->depth--;
        if (!empty)
                indent(w);
        fputc(c, w->f);
}

void json_begin_object(JsonWriter *w) {
        open_container(w, '{');
}

void json_end_object(JsonWriter *w) {
        close_container(w, '}');
}

void json_begin_array(JsonWriter *w) {
        open_container(w, '[');
}

void json_end_array(JsonWriter *w) {
        close_container(w, ']');
}

void json_key(JsonWriter *w, const char *key) {
        before_item(w);
        json_write_escaped(w->f, key, strlen(key));
        fputs(w->pretty ? ": " : ":", w->f);
        w->after_key = true;
}

void json_write_escaped(FILE *f, const char *s, size_t n) {
        fputc('"', f);
        while (n > 0) {
                uint32_t c;
                size_t k = utf8_decode(s, n, &c);

                if (k == 0) {
                        fputs("\\ufffd", f);
                        s++, n--;
                        continue;
                }
                switch (c) {
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '\b':
                        fputs("\\b", f);
                        break;
                case '\f':
                        fputs("\\f", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                case '\r':
                        fputs("\\r", f);
                        break;
                case '\t':
                        fputs("\\t", f);
                        break;
                default:
                        /* The controls and bidirectional marks of escape.h,
                         * so that raw JSON on a terminal is as safe as a
                         * table, and the two line separators that break
                         * JavaScript parsers. */
                        if (unicode_is_control(c) || c == 0x2028 || c == 0x2029)
                                fprintf(f, "\\u%04x", (unsigned) c);
                        else
                                fwrite(s, 1, k, f);
                        break;
                }
                s += k;
                n -= k;
        }
        fputc('"', f);
}

void json_string_len(JsonWriter *w, const char *s, size_t n) {
        before_item(w);
        json_write_escaped(w->f, s, n);
}

void json_string(JsonWriter *w, const char *s) {
        if (!s) {
                json_null(w);
                return;
        }
        json_string_len(w, s, strlen(s));
}

void json_uint(JsonWriter *w, uint64_t v) {
        before_item(w);
        fprintf(w->f, "%" PRIu64, v);
}

void json_int(JsonWriter *w, int64_t v) {
        before_item(w);
        fprintf(w->f, "%" PRIi64, v);
}

void json_double(JsonWriter *w, double d) {
        if (!isfinite(d)) {
                json_null(w);
                return;
        }
        before_item(w);
        fprintf(w->f, "%.17g", d);
}

void json_bool(JsonWriter *w, bool b) {
        before_item(w);
        fputs(b ? "true" : "false", w->f);
}

void json_null(JsonWriter *w) {
        before_item(w);
        fputs("null", w->f);
}

void json_finish(JsonWriter *w) {
        fputc('\n', w->f);
        fflush(w->f);
}
