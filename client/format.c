/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting for humans: sizes, times and tables, whose columns fit the
 * widest entry in terminal cells, wide (CJK, emoji) characters counted
 * twice. */
#include <errno.h>
#include <inttypes.h>
#include <libsmartcols.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "escape.h"
#include "format.h"

char *format_size(char buf[static FORMAT_SIZE_MAX], uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
        unsigned i = 0;
        uint64_t scale = 1024;

        if (bytes < 1024) {
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 " B", bytes);
                return buf;
        }
        while (i + 1 < ELEMENTSOF(units) && bytes / scale >= 1024) {
                scale *= 1024;
                i++;
        }

        /* Tenths, rounded to nearest, in integers: a double loses the low
         * bits of sizes near 2^64. */
        uint64_t whole = bytes / scale, rest = bytes % scale;
        uint64_t tenths = (rest / (scale / 1024) * 10 + 512) / 1024;
        if (tenths >= 10) {
                whole++;
                tenths = 0;
        }
        if (whole == 1024 && i + 1 < ELEMENTSOF(units)) {
                whole = 1;
                i++;
        }
        if (tenths == 0)
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 " %s", whole, units[i]);
        else
                snprintf(buf, FORMAT_SIZE_MAX, "%" PRIu64 ".%" PRIu64 " %s", whole, tenths, units[i]);
        return buf;
}

char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t usec) {
        time_t sec = (time_t) (usec / 1000000);
        long off;
        struct tm tm;
        size_t n;

        buf[0] = 0;
        if (!localtime_r(&sec, &tm))
                return buf;
        n = strftime(buf, FORMAT_TIMESTAMP_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return buf;
        /* strftime's %z has no colon; RFC 3339 (and date -d) want one. */
        off = tm.tm_gmtoff / 60;
        snprintf(buf + n, FORMAT_TIMESTAMP_MAX - n, ".%03u%c%02ld:%02ld", (unsigned) (usec / 1000 % 1000),
                 off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
        return buf;
}

/* libsmartcols, the library of lsblk and losetup, lays out the columns.
 * Cells are kept in escape.h's visible form: what reaches it is printable
 * UTF-8 already, so its own encoding of unsafe text is switched off. */
struct Table {
        struct libscols_table *tb;
        struct libscols_line *line;     /* the row being filled */
        size_t n_columns;
        size_t n_cells;                 /* since the headers */
};

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        scols_unref_table(t->tb);
        free(t);
        return NULL;
}

int table_new(Table **ret, size_t n_columns, const char *const *headers) {
        _cleanup_(table_freep) Table *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->n_columns = n_columns;
        t->tb = scols_new_table();
        if (!t->tb)
                return -ENOMEM;
        /* Two spaces between columns, as before; and the layout of a pipe
         * on a terminal too: a narrow window wraps lines, it does not
         * truncate cells. */
        r = scols_table_set_column_separator(t->tb, "  ");
        if (r >= 0)
                r = scols_table_set_termforce(t->tb, SCOLS_TERMFORCE_NEVER);
        if (r >= 0)
                r = scols_table_enable_noencoding(t->tb, 1);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_columns; i++) {
                _cleanup_free_ char *h = escape_text(headers[i]);

                if (!h || !scols_table_new_column(t->tb, h, 0, 0))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int table_add(Table *t, const char *cell) {
        size_t col = t->n_cells % t->n_columns;
        char *c;
        int r;

        if (col == 0) {
                t->line = scols_table_new_line(t->tb, NULL);
                if (!t->line)
                        return -ENOMEM;
        }
        c = escape_text(cell ?: "-");
        if (!c)
                return -ENOMEM;
        r = scols_line_refer_data(t->line, col, c);
        if (r < 0) {
                free(c);
                return r;
        }
        t->n_cells++;
        return 0;
}

size_t table_rows(const Table *t) {
        return (t->n_cells + t->n_columns - 1) / t->n_columns;
}

/* libsmartcols prints nothing for a table without rows; its header alone
 * says what there is none of. */
static int print_headers(const Table *t, FILE *f) {
        for (size_t i = 0; i < t->n_columns; i++) {
                struct libscols_column *c = scols_table_get_column(t->tb, i);
                struct libscols_cell *h = c ? scols_column_get_header(c) : NULL;
                const char *name = h ? scols_cell_get_data(h) : NULL;

                fprintf(f, "%s%s", i > 0 ? "  " : "", strempty(name));
        }
        fputc('\n', f);
        return fflush(f) != 0 ? -errno : 0;
}

int table_print(const Table *t, FILE *f) {
        /* Widths are measured with the C library's wcwidth() in the
         * locale's character set; the cells are UTF-8 whatever the
         * locale, so measure them as UTF-8 (only while printing: the
         * rest of the program keeps its locale). */
        locale_t utf8, old;
        int r;

        if (t->n_cells == 0)
                return print_headers(t, f);

        utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t) 0);
        old = utf8 ? uselocale(utf8) : (locale_t) 0;
        r = scols_table_set_stream(t->tb, f);
        if (r >= 0)
                r = scols_print_table(t->tb);
        if (utf8) {
                uselocale(old);
                freelocale(utf8);
        }
        if (r >= 0 && fflush(f) != 0)
                r = -errno;
        return r < 0 ? r : 0;
}
