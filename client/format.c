/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Formatting for humans. Tables buffer every cell so that column widths
 * fit the widest entry. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "escape.h"
#include "format.h"
#include "utf8.h"

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

struct Table {
        size_t n_columns;
        char **cells;           /* headers first, then rows */
        size_t n_cells, allocated;
};

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
        return NULL;
}

int table_add(Table *t, const char *cell) {
        char *c;

        if (t->n_cells == t->allocated) {
                size_t n = MAX(t->allocated * 2, (size_t) 16);
                char **p = reallocarray(t->cells, n, sizeof(char *));

                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->allocated = n;
        }
        c = escape_text(cell ?: "-");
        if (!c)
                return -ENOMEM;
        t->cells[t->n_cells++] = c;
        return 0;
}

int table_new(Table **ret, size_t n_columns, const char *const *headers) {
        _cleanup_(table_freep) Table *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        t->n_columns = n_columns;
        for (size_t i = 0; i < n_columns; i++) {
                r = table_add(t, headers[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(t);
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - 1;
}

void table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));

        if (!width)
                return;
        for (size_t i = 0; i < t->n_cells; i++)
                width[i % t->n_columns] = MAX(width[i % t->n_columns], utf8_width(t->cells[i]));

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_columns;

                fputs(t->cells[i], f);
                if (col + 1 == t->n_columns || i + 1 == t->n_cells)
                        fputc('\n', f);
                else
                        fprintf(f, "%*s", (int) (width[col] - utf8_width(t->cells[i]) + 2), "");
        }
}
